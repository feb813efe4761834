#!/usr/bin/env bash
# The official postgres image runs this once, on an empty data volume: one database and one login
# role per service listed in SERVICE_DATABASES (e.g. "things users"), with the password taken from
# <NAME>_DB_PASSWORD (THINGS_DB_PASSWORD, ...). The SQL is idempotent: running it again is safe.
set -Eeuo pipefail

sql="$(dirname "${BASH_SOURCE[0]}")/service-database.psql"
for name in ${SERVICE_DATABASES:?list the service databases in SERVICE_DATABASES}; do
    password_variable="${name^^}_DB_PASSWORD"
    password="${!password_variable:?set ${password_variable} to the password of the ${name} role}"
    echo "service database: ${name}"
    psql --no-psqlrc -v ON_ERROR_STOP=1 --username "${POSTGRES_USER:-postgres}" --dbname postgres \
        -v name="${name}" -v password="${password}" -f "${sql}"
done
