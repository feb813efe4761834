"""Development only: the embedded servers and the service processes that the tests, `make up` and
`make bench` run. No service depends on it, so no image installs it."""
