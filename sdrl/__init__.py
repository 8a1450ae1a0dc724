"""sdrl: self-supervised semantic-decoupled pretraining for remote-sensing change detection."""

__version__ = "0.1.0"
