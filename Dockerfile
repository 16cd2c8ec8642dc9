# The connector image Airbyte runs. BASE_IMAGE defaults to the base metadata.yaml names
# (connectorBuildOptions.baseImage; a test keeps the two equal). Where no registry is reachable,
# integration_tests/image/image.sh builds a local stand-in and passes it as BASE_IMAGE.
ARG BASE_IMAGE=docker.io/airbyte/python-connector-base:4.0.2@sha256:9fdb1888c4264cf6fee473649ecb593f56f58e5d0096a87ee0b231777e2e3e73
FROM ${BASE_IMAGE}

WORKDIR /airbyte/integration_code

# Dependencies first, from setup.py alone: this layer is rebuilt only when setup.py changes,
# not on every change to the connector's code.
COPY setup.py ./
RUN pip install --no-cache-dir . && pip uninstall -y source-smstools

COPY source_smstools ./source_smstools
RUN pip install --no-cache-dir --no-deps .

ENV AIRBYTE_ENTRYPOINT="source-smstools"
ENTRYPOINT ["source-smstools"]

LABEL io.airbyte.name=airbyte/source-smstools
LABEL io.airbyte.version=0.1.0
