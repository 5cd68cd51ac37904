"""Reading and writing inventory's tables, one module per area as in handlers/; callers
import the module they use. SQL lives here; rules live in domain/."""
