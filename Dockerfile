# The `pygents demo` workload, for docker-compose.yml. Built from this checkout:
#
#     docker build -t pygents-demo .
#     docker run --rm -p 9464:9464 pygents-demo demo --metrics-host 0.0.0.0
FROM python:3.12.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /src
# The package and the metadata its build needs (pyproject.toml names README.md as the readme).
COPY pyproject.toml README.md ./
COPY src ./src
RUN python -m pip install ".[all,redis]" \
    && useradd --system --create-home --uid 10001 pygents

USER pygents
WORKDIR /home/pygents
EXPOSE 9464
ENTRYPOINT ["pygents"]
CMD ["demo", "--metrics-host", "0.0.0.0", "--metrics-port", "9464"]
