// Package msgraph proves seatledger's Microsoft Graph surface (/v1.0) with
// the official Microsoft Graph Go SDK, unmodified, with its default
// middleware (request bodies gzip-compressed): its tests build the
// seatledger binary, start `seatledger serve` and drive it through the SDK.
//
// It is a module of its own so that seatledger does not depend on the SDK,
// whose models package takes minutes and gigabytes to compile. Run it with
// `cd compat/msgraph && go test ./...` (CI does, after the main suite).
package msgraph
