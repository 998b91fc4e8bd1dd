//! SWIM gossip membership over UDP, driven by foca.
//! (Built in the gossip issue.)
