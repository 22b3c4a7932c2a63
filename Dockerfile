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
COPY deploy/create_topics.py ./deploy/create_topics.py
RUN mkdir -p /app/var && chown dopomoga /app/var
USER dopomoga
ENV PYTHONUNBUFFERED=1 DOPOMOGA_PROGRAMS=/app/programs DOPOMOGA_VAR=/app/var DOPOMOGA_METRICS_ADDR=0.0.0.0
EXPOSE 8000 9101 9102 9103 9105
CMD ["dopomoga", "--help"]
