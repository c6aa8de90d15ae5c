"""The REST API (Litestar): auth, users, admin and health; `create_app(settings)` builds it."""
