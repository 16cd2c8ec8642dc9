"""The floor: the least a reader of this API can do per message, to measure the connector against.

A plain `requests` loop over the same pages the connector reads (`limit` 2000, pages 1..n as
`total` says), writing one Airbyte RECORD line per message, serialized with orjson as the CDK
does, with `phone`, `id` and `datetime_utc` added the cheapest plain way. No retries, no state,
no schema: what is left of the connector's time above this is the framework's and ours.

    python bench/floor.py --config config.json > /dev/null
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time

import orjson
import requests


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", required=True, help="the connector's config file")
    args = parser.parse_args()
    config = json.loads(open(args.config).read())
    base = (config.get("base_url") or "https://api.smsgatewayapi.com").rstrip("/")
    limit = config.get("page_size") or 2000
    session = requests.Session()
    session.headers.update({"X-Client-Id": config["client_id"], "X-Client-Secret": config["client_secret"]})
    out = sys.stdout.buffer
    dumps = orjson.dumps
    gmtime, strftime = time.gmtime, time.strftime
    for phone in config["phone_numbers"]:
        url = f"{base}/v1/conversation/{phone.lstrip('+')}"
        page = 1
        while True:
            response = session.get(url, params={"limit": limit, "page": page}, timeout=60)
            response.raise_for_status()
            body = response.json()
            emitted_at = int(time.time() * 1000)
            for message in body["conversation"]:
                message["phone"] = phone
                message["id"] = message.get("messageId") or "h" + hashlib.sha256(
                    "\x1f".join(
                        [phone] + [str(message.get(k)) for k in ("direction", "unixDatetime", "sender", "receiver", "message")]
                    ).encode()
                ).hexdigest()[:32]
                message["datetime_utc"] = strftime("%Y-%m-%dT%H:%M:%SZ", gmtime(message["unixDatetime"]))
                out.write(
                    dumps({"type": "RECORD", "record": {"stream": "conversation", "data": message, "emitted_at": emitted_at}})
                )
                out.write(b"\n")
            if page * limit >= body["total"]:
                break
            page += 1
    out.flush()


if __name__ == "__main__":
    main()
