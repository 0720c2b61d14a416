# One image: API (`chm serve`), search worker (`chm worker`) and CLI.
FROM python:3.11-slim AS base
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 CHM_ENV=production
WORKDIR /app
RUN useradd --create-home --uid 10001 chm
COPY pyproject.toml README.md alembic.ini openapi-overrides.yaml ./
COPY app ./app
COPY alembic ./alembic
RUN pip install --upgrade pip && pip install .
USER chm
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=3s CMD python -c "import urllib.request,sys; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8000/healthz').status==200 else 1)"
ENTRYPOINT ["chm"]
CMD ["serve", "--host", "0.0.0.0", "--port", "8000", "--workers", "2"]
