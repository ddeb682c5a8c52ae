"""The operator's viewer on the laptop: the link's alerts kept in a local store and shown in a web page."""
