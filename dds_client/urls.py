"""Gateway URLs: the and-home endpoint, DUI hosts, query building and redaction (reference 3.11)."""

import re
from urllib.parse import parse_qsl, quote, urlsplit

__all__ = ["AND_HOME_URL", "dui_url", "build_url", "redact_url"]

AND_HOME_URL = "ws://botai-dsg.and-home.cn:4443/dsg/v1/prod"

_SECRET_KEYS = ("apikey", "apiKey", "sig", "deviceSecret")
_SECRET_RE = re.compile(r"([?&](?:%s)=)[^&#]*" % "|".join(_SECRET_KEYS))


def redact_url(url):
    """The URL with the values of apikey/apiKey/sig/deviceSecret replaced by ``***``."""
    return _SECRET_RE.sub(r"\1***", url)


def dui_url(branch="prod", version="v2", host="dds.dui.ai", secure=True):
    """``wss://dds.dui.ai/dds/v2/prod`` style base URL of the DUI cloud."""
    if version not in ("v1", "v2", "v3"):
        raise ValueError("version must be one of 'v1', 'v2', 'v3'")
    if not isinstance(branch, str) or not re.match(r"^[A-Za-z0-9_.-]+$", branch):
        raise ValueError("branch must be a non-empty string of letters, digits, '_', '.', '-'")
    if not isinstance(host, str) or not host:
        raise ValueError("host must be a non-empty string")
    return "%s://%s/dds/%s/%s" % ("wss" if secure else "ws", host, version, branch)


def _pairs(extra_query):
    if extra_query is None:
        return []
    items = extra_query.items() if hasattr(extra_query, "items") else extra_query
    out = []
    for item in items:
        try:
            key, value = item
        except (TypeError, ValueError):
            raise TypeError("extra_query must be a mapping or a list of (key, value) pairs")
        out.append((str(key), str(value)))
    return out


def base_query_keys(base):
    """Query keys already present in a base URL (blank values kept)."""
    return [k for k, _ in parse_qsl(urlsplit(base).query, keep_blank_values=True)]


def check_base(base):
    if not isinstance(base, str) or not (base.startswith("ws://") or base.startswith("wss://")):
        raise ValueError("url must start with ws:// or wss://")


def build_url(base=AND_HOME_URL, product_id=None, auth=None, *, service_type=None,
              full_duplex=False, product_version=None, user_id=None, extra_query=None):
    """The handshake URL: base query first, then serviceType, productId, auth, the optional keys."""
    check_base(base)
    pairs = []
    if service_type is not None:
        pairs.append(("serviceType", str(service_type)))
    if product_id is not None:
        pairs.append(("productId", str(product_id)))
    if auth is not None:
        pid = str(product_id) if product_id is not None else dict(
            parse_qsl(urlsplit(base).query, keep_blank_values=True)).get("productId", "")
        pairs.extend(auth.query(pid))
    if full_duplex:
        pairs.append(("communicationType", "fullDuplex"))
    if product_version is not None:
        pairs.append(("productVersion", str(product_version)))
    if user_id is not None:
        pairs.append(("userId", str(user_id)))
    pairs.extend(_pairs(extra_query))
    present = set(base_query_keys(base))
    for key, _ in pairs:
        if key in present:
            raise ValueError("%s given both in url and as an argument" % key)
    if not pairs:
        return base
    fragment = ""
    if "#" in base:
        base, fragment = base.split("#", 1)
        fragment = "#" + fragment
    query = "&".join("%s=%s" % (quote(k, safe=""), quote(v, safe="")) for k, v in pairs)
    if "?" in base:
        sep = "" if base.endswith("?") or base.endswith("&") else "&"
    else:
        sep = "?"
    return base + sep + query + fragment
