"""validate -> locate -> rules -> incidents: pure, batch in, events out."""
