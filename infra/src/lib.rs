//! Z-Novel adapters implementing the domain's ports (placeholder; being built).
