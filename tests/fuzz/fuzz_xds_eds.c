/* libFuzzer harness for EDS responses: the CDS harness with the type forced to
 * ClusterLoadAssignment (the state subscribes to "a", "b" and "svc", so assignments with those names
 * go all the way to delivery). */
#define FUZZ_XDS_TYPE RM_XDS_EDS
#include "fuzz_xds_cds.c"
