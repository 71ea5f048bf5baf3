package store

import "fmt"

// ShareKey is the case-folded key share names are unique under.
func ShareKey(name string) string { return string(shareKey(name)) }

// ValidateShareForReplica checks a share a master sent: valid as a share,
// with the master's FSID.
func ValidateShareForReplica(s Share) error {
	if _, err := validateShare(s); err != nil {
		return err
	}
	if s.FSID == 0 {
		return fmt.Errorf("%w share %q: no fsid", ErrInvalid, s.Name)
	}
	return nil
}

// ValidateUserForReplica checks a user a master sent: valid as a user,
// with both hashes and the master's UID (GID = UID, from FirstUID up).
func ValidateUserForReplica(u User) error {
	if err := validateUser(u); err != nil {
		return err
	}
	if u.UID < FirstUID || u.UID == 1<<32-1 || u.GID != u.UID {
		return fmt.Errorf("%w user %q: uid %d / gid %d (want gid = uid, uid from %d)", ErrInvalid, u.Name, u.UID, u.GID, FirstUID)
	}
	return nil
}
