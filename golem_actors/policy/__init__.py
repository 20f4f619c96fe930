"""Market and payment policy: pure decisions about demands, offers, prices and agreed terms."""
