# -*- coding: utf-8 -*-
import json

from sis_rasr.bean.sis_config import SisConfig
from sis_rasr.exception.exceptions import ClientException
from sis_rasr.utils import http_utils
from sis_rasr.utils.logger_utils import logger


def build_token_body(user_name, password, domain_name, region):
    """ The IAM password-auth body, key order as the vendor sends it. """
    return {"auth": {"identity": {"password": {"user": {"name": user_name, "password": password,
                                                        "domain": {"name": domain_name}}},
                                  "methods": ["password"]},
                     "scope": {"project": {"name": region}}}}


def get_token(user_name, password, domain_name, region, url=None, config=None):
    """
        获取token: POSTs the password body to IAM and returns the X-Subject-Token header.
    :param url:     IAM URL, default https://iam.<region>.myhuaweicloud.com/v3/auth/tokens
    :param config:  SisConfig (None: a fresh default one)
    """
    if url is None:
        url = 'https://iam.' + region + '.myhuaweicloud.com/v3/auth/tokens'
    if config is None:
        config = SisConfig()
    if not isinstance(config, SisConfig):
        error_msg = 'the param \'config\' in token_service must be SisConfig class'
        logger.error(error_msg)
        raise ClientException(error_msg)
    time_out = (config.get_connect_timeout(), config.get_read_timeout())
    headers = {'Content-Type': 'application/json'}
    body = json.dumps(build_token_body(user_name, password, domain_name, region))
    resp = http_utils.http_connect(url, headers, body, 'POST', time_out, config.get_proxy(),
                                   config.get_certificate_check())
    try:
        token = resp.headers.get('X-Subject-Token')
        if token is None:
            logger.error('Error occurs in getting token, %s' % resp.text)
            raise ClientException('Error occurs in getting token, %s' % resp.text)
        return token
    finally:
        resp.close()
