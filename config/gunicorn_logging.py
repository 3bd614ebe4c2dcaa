"""gunicorn's own logs (its error log, and its access log) written through the
same number mask as the app's: config/gunicorn.conf.py sets
`logger_class = "config.gunicorn_logging.MaskedLogger"`.

gunicorn's loggers do not reach the root logger (it turns propagation off),
so settings.LOGGING alone would not mask them. The access log leaves query
strings out already; a worker's error can still quote a number.
"""

from gunicorn.glogging import Logger

from config.lib.redaction import MaskNumbers


class MaskedLogger(Logger):
    """gunicorn's logger, with MaskNumbers on every handler it sets up
    (again after a reload, which sets them up anew)."""

    def setup(self, cfg):
        super().setup(cfg)
        for log in (self.error_log, self.access_log):
            for handler in log.handlers:
                if not any(isinstance(f, MaskNumbers) for f in handler.filters):
                    handler.addFilter(MaskNumbers())
