//! Service-side API: join the cluster so registries see this service.
//! (Built in the gossip issue.)
