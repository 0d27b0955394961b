//! The hardened neighbour client (being written).
