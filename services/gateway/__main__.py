"""``python -m services.gateway``: the gateway on 127.0.0.1:$DOPOMOGA_GATEWAY_PORT (8000) under uvicorn.

Production runs ``uvicorn services.gateway.app:app --host 0.0.0.0 --workers N`` (docker-compose.yml)."""

import os

import uvicorn

uvicorn.run("services.gateway.app:app", host="127.0.0.1", port=int(os.environ.get("DOPOMOGA_GATEWAY_PORT", "8000")), log_level="warning",
            timeout_graceful_shutdown=5)  # stop within 10 s of SIGTERM (services.platform.lifecycle)
