# One image for every Dopomoga service (eligibility, calculation, budget, gateway, treasury).
# Build: docker build -t dopomoga .    Run one: docker run dopomoga python -m services.budget
FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY dopomoga ./dopomoga
COPY schemas ./schemas
COPY services ./services
# The postgres extra brings psycopg, the PostgreSQL driver of the ledger.
RUN pip install --no-cache-dir --prefix=/install ".[postgres]"

FROM python:3.11-slim
RUN useradd --system --uid 10001 --home /app dopomoga
WORKDIR /app
COPY --from=build /install /usr/local
COPY programs ./programs
# Start-up helpers (standard library only, besides migrate.py's ledger): the entrypoint that puts
# the secret database password into DOPOMOGA_DB, the migrate job, the health check, the topics job.
COPY deploy/entrypoint.py deploy/migrate.py deploy/healthcheck.py deploy/create_topics.py ./deploy/
# Every directory a volume is mounted on exists here, owned by the service user: Docker copies a
# directory's owner into a new named volume, and creates a missing mount point root-owned (the
# treasury then crash-looped on PermissionError writing its registers).
RUN mkdir -p /app/var/registers /app/var/treasury /app/var/logs \
    && chown -R dopomoga:dopomoga /app/var
USER dopomoga
ENV PYTHONUNBUFFERED=1 DOPOMOGA_PROGRAMS=/app/programs DOPOMOGA_VAR=/app/var DOPOMOGA_METRICS_ADDR=0.0.0.0
EXPOSE 8000 9101 9102 9103 9105
ENTRYPOINT ["python", "/app/deploy/entrypoint.py"]
CMD ["dopomoga", "--help"]
