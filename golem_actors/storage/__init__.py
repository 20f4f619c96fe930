"""File transfer between the requestor and providers (local HTTP now; GFTP over GSB later)."""
