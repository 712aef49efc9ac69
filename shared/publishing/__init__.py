"""The outputs' clients: Power BI push rows."""
