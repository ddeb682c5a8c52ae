"""The van–laptop link: CURVE-encrypted ZeroMQ carrying alerts (never lost, in order), decisions, heartbeats,
health and a conflated preview stream. `protocol` holds the logic, `appliance_link` and `viewer_link` the
sockets."""
