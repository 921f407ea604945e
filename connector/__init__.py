"""Gmail Limited-Use inbox connector with access auditing."""

__version__ = "0.1.0"
