"""Building blocks shared by the model families; no objective lives here."""
