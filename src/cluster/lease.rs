//! Leadership of the background audit through a coordination.k8s.io/v1 Lease.
