// Package api is nasd's local HTTP/JSON API, served on a unix socket and
// used by nasctl (and the web console).
//
// The wire types are snake_case JSON and form the stable --json output of
// nasctl. NewHandler serves a Backend, which the appliance package
// implements; Client speaks to a Handler over the socket and itself
// satisfies Backend. Errors travel as {"error":"..."} with a status taken
// from the store's sentinels: ErrInvalid 400, ErrNotFound 404, ErrExists
// 409, anything else 500. A Client error matches the same sentinels with
// errors.Is.
//
// Routes:
//
//	GET    /v1/status
//	GET    /v1/shares
//	POST   /v1/shares                 AddShareRequest -> 201 Share
//	DELETE /v1/shares/{name}          -> 204
//	GET    /v1/users
//	POST   /v1/users                  AddUserRequest -> 201 User
//	DELETE /v1/users/{name}           -> 204
//	PUT    /v1/users/{name}/password  PasswordRequest -> 204
//
// Optional groups, served when the Backend also implements their
// interface (ClusterBackend, BondBackend, RaidBackend, UpdateBackend,
// InstallBackend):
//
//	GET    /v1/cluster                -> ClusterStatus
//	DELETE /v1/cluster                -> 204 (leave the pair)
//	POST   /v1/cluster/init           ClusterInitRequest -> 201 ClusterInitResponse
//	POST   /v1/cluster/join           ClusterJoinRequest -> ClusterStatus
//	POST   /v1/cluster/promote|demote|failback  -> 204
//	GET    /v1/bond                   -> BondStatus
//	POST   /v1/bond/members           BondAddRequest -> 201 BondStatus
//	DELETE /v1/bond/members/{nic}     -> 204
//	PUT    /v1/bond/mode              BondModeRequest -> BondStatus
//	GET    /v1/raid                   -> RaidStatus
//	POST   /v1/raid/{array}/scrub     -> 202 RaidArray
//	POST   /v1/raid/{array}/replace   RaidReplaceRequest -> 202 RaidArray
//	POST   /v1/raid/adopt             RaidAdoptRequest -> 202 RaidAdoptResult
//	POST   /v1/raid/esp-sync          RaidESPSyncRequest -> 200 RaidESPSyncResult
//	POST   /v1/update[?tries=N][&allow_unsigned=1][&allow_downgrade=1] bundle (application/octet-stream) -> 200 UpdateResult (400: unsigned, unknown key, bad signature, or older than the running release)
//	GET    /v1/update                 -> 200 FirmwareStatus (root slots: running, next, trial, rolled back)
//	POST   /v1/install?disks=vdb,vdc[&data_level=L][&allow_unsigned=1] bundle (application/octet-stream) -> 200 InstallResult (400: a disk not blank or run from, too few disks, untrusted bundle)
package api
