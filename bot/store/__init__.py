"""The one owner of state: tables of JSON records, and the work journal."""
