//! Discovery client: RPC calls with failover and a local view fed by Watch.
//! (Built in the client issue.)
