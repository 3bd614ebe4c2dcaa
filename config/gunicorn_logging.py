"""gunicorn's own logs (its error log and its access log, whose request lines
carry query strings such as an admin search for a number) written through
the same number mask as the app's: a gunicorn config file sets
`logconfig_dict = config.gunicorn_logging.logconfig_dict`.

gunicorn's loggers do not reach the root logger (it turns propagation off),
so settings.LOGGING alone would not mask them.
"""

MASK = {"()": "config.lib.redaction.MaskNumbers"}

logconfig_dict = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"mask_numbers": MASK},
    "formatters": {
        "generic": {
            "format": "%(asctime)s [%(process)d] [%(levelname)s] %(message)s",
            "datefmt": "[%Y-%m-%d %H:%M:%S %z]",
        },
        "access": {"format": "%(message)s"},
    },
    "handlers": {
        "error_console": {
            "class": "logging.StreamHandler",
            "formatter": "generic",
            "filters": ["mask_numbers"],
            "stream": "ext://sys.stderr",
        },
        "access_console": {
            "class": "logging.StreamHandler",
            "formatter": "access",
            "filters": ["mask_numbers"],
            "stream": "ext://sys.stdout",
        },
    },
    "root": {"level": "INFO", "handlers": ["error_console"]},
    "loggers": {
        "gunicorn.error": {
            "level": "INFO",
            "handlers": ["error_console"],
            "propagate": False,
            "qualname": "gunicorn.error",
        },
        "gunicorn.access": {
            "level": "INFO",
            "handlers": ["access_console"],
            "propagate": False,
            "qualname": "gunicorn.access",
        },
    },
}
