# The connector image Airbyte runs. BASE_IMAGE defaults to the base metadata.yaml names
# (connectorBuildOptions.baseImage; a test keeps the two equal). Where no registry is reachable,
# integration_tests/image/image.sh builds a local stand-in and passes it as BASE_IMAGE.
ARG BASE_IMAGE=docker.io/airbyte/python-connector-base:4.0.2@sha256:9fdb1888c4264cf6fee473649ecb593f56f58e5d0096a87ee0b231777e2e3e73
FROM ${BASE_IMAGE}

# Everything is installed as root, into the system's site-packages and bin (world-readable, as pip
# leaves them); the connector then runs as the base's unprivileged `airbyte` user (USER below),
# which can read its code, manifest and schemas but not change them. It needs to write nothing,
# so this directory (only the build's sources) stays root's.
WORKDIR /airbyte/integration_code

# Dependencies first, from setup.py alone: this layer is rebuilt only when setup.py changes,
# not on every change to the connector's code.
COPY setup.py ./
RUN pip install --no-cache-dir . && pip uninstall -y source-smstools

# One line per top-level package setup.py lists: when setup.py gains one (smstools_emulator, say),
# add its COPY line here, or find_packages leaves it out of the image (or, if setup.py names it
# outright, `pip install .` fails).
COPY source_smstools ./source_smstools
RUN pip install --no-cache-dir --no-deps .

ENV AIRBYTE_ENTRYPOINT="source-smstools"
ENTRYPOINT ["source-smstools"]

# As Airbyte's own connector images on python-connector-base 3.0 and later: uid 1000, gid 1000.
USER airbyte

LABEL io.airbyte.name=airbyte/source-smstools
LABEL io.airbyte.version=0.4.0
