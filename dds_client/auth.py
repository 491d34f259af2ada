"""Authentication for the DDS gateway: apikey (cloud-to-cloud) and device signature (reference 4.3)."""

import hashlib
import hmac
import time
import uuid

__all__ = ["ApiKeyAuth", "DeviceAuth", "device_signature", "registration_signature"]


def _hmac_sha1_hex(key, message):
    return hmac.new(key.encode("utf-8"), message.encode("utf-8"), hashlib.sha1).hexdigest()


def device_signature(device_name, nonce, product_id, timestamp, device_secret):
    """Lowercase hex HMAC-SHA1(device_secret, device_name + nonce + product_id + timestamp)."""
    return _hmac_sha1_hex(str(device_secret),
                          "%s%s%s%s" % (device_name, nonce, product_id, timestamp))


def registration_signature(product_key, fmt, nonce, product_id, timestamp, product_secret):
    """Lowercase hex HMAC-SHA1(product_secret, product_key + fmt + nonce + product_id + timestamp)."""
    return _hmac_sha1_hex(str(product_secret),
                          "%s%s%s%s%s" % (product_key, fmt, nonce, product_id, timestamp))


def _non_empty_str(value, name):
    if not isinstance(value, str) or not value:
        raise ValueError("%s must be a non-empty string" % name)
    return value


class ApiKeyAuth:
    """``apikey=<key>`` in the query (the key is bound to an IP whitelist on the console)."""

    def __init__(self, apikey):
        self._apikey = _non_empty_str(apikey, "apikey")

    def query(self, product_id):
        return [("apikey", self._apikey)]

    def __repr__(self):
        return "ApiKeyAuth(apikey='***')"


class DeviceAuth:
    """Device-to-cloud signature; every ``query()`` call makes a fresh nonce, timestamp and sig."""

    def __init__(self, device_name, device_secret, *, timestamp_unit="ms"):
        self.device_name = _non_empty_str(device_name, "device_name")
        self._device_secret = _non_empty_str(device_secret, "device_secret")
        if timestamp_unit not in ("ms", "s"):
            raise ValueError("timestamp_unit must be 'ms' or 's'")
        self.timestamp_unit = timestamp_unit

    def query(self, product_id):
        nonce = uuid.uuid4().hex
        now = time.time()
        timestamp = str(int(now * 1000)) if self.timestamp_unit == "ms" else str(int(now))
        sig = device_signature(self.device_name, nonce, product_id, timestamp, self._device_secret)
        return [("deviceName", self.device_name), ("nonce", nonce), ("timestamp", timestamp),
                ("sig", sig)]

    def __repr__(self):
        return "DeviceAuth(device_name=%r, device_secret='***')" % (self.device_name,)
