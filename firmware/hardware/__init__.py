"""The appliance as a box in a van: GPIO lights, button and sign relay, systemd watchdog, host health."""
