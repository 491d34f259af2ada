# -*- coding: utf-8 -*-
import json

from sis_rasr.auth import signer
from sis_rasr.bean.sis_config import SisConfig
from sis_rasr.exception.exceptions import ClientException
from sis_rasr.utils import http_utils
from sis_rasr.utils.logger_utils import logger


def get_signed_headers(ak, sk, url, headers, params, http_method):
    """
        根据ak和sk以及请求信息获取加密头部: returns the signed header dict
        (caller headers, X-Sdk-Date, host, Authorization, content-length).
    """
    sig = signer.Signer()
    sig.Key = ak
    sig.Secret = sk
    if params is None:
        body = ''
    elif isinstance(params, dict):
        body = json.dumps(params)
    else:
        body = params
    r = signer.HttpRequest(http_method, url, headers, body)
    sig.Sign(r)
    return r.headers


def aksk_connect(ak, sk, url, headers, params, http_method, config=None):
    """
        Signs and sends one HTTP request; returns the parsed JSON (``http_utils.parse_resp``).
    :param config: SisConfig, timeouts / proxy / certificate check
    """
    sis_config = SisConfig() if config is None else config
    if not isinstance(sis_config, SisConfig):
        error_msg = 'the param \'config\' in aksk_connect must be SisConfig class'
        logger.error(error_msg)
        raise ClientException(error_msg)
    signed_headers = get_signed_headers(ak, sk, url, headers, params, http_method)
    time_out = (sis_config.get_connect_timeout(), sis_config.get_read_timeout())
    resp = http_utils.http_connect(url, signed_headers, params, http_method, time_out, sis_config.get_proxy(),
                                   sis_config.get_certificate_check())
    try:
        return http_utils.parse_resp(resp)
    finally:
        if resp is not None:
            resp.close()
