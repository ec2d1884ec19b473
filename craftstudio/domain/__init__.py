"""Pure data and rules of CraftStudio (standard library only)."""
