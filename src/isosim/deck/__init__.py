"""Input decks: TOML files validated against per-model schemas before anything runs."""

from .load import MODELS, deck_digest, load_deck, to_toml, validate

__all__ = ["MODELS", "deck_digest", "load_deck", "to_toml", "validate"]
