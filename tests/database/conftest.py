"""Defense in depth at the database: PostgreSQL row-level security, encryption at rest, the one
read path every GET uses (``app.fastread``) and pooled connections' liveness. No fixture
is shared by this folder alone."""
