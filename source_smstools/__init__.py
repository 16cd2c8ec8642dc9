from source_smstools.source import SourceSmstools

__all__ = ["SourceSmstools"]
