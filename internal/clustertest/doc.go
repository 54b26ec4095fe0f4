// Package clustertest holds the Redis Cluster readiness test: it runs every
// seatledger component that talks to Redis against a recording client and
// checks that each multi-key operation stays inside one hash tag.
package clustertest
