from sample_app.domains.widgets.routes import router

__all__ = ["router"]
