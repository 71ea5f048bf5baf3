package store

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"time"

	"go.etcd.io/bbolt"
)

// User is a NAS user. Only hashes of the password are kept, never the
// password.
type User struct {
	Name string `json:"name"`
	// UID and GID are allocated from 10000 up (UID == GID) and never reused.
	UID uint32 `json:"uid"`
	GID uint32 `json:"gid"`
	// PasswordHash is a salted argon2id hash in PHC form (HashPassword).
	PasswordHash string `json:"password_hash"`
	// NTHash is Samba's NT hash, hex, so a passdb can be rebuilt here or on
	// a replica.
	NTHash  string    `json:"nt_hash"`
	Created time.Time `json:"created"`
}

// SetPassword validates pw and sets both of u's hashes from it.
func (u *User) SetPassword(pw string) error {
	h, err := HashPassword(pw)
	if err != nil {
		return err
	}
	u.PasswordHash, u.NTHash = h, NTHash(pw)
	return nil
}

// LogValue keeps hashes out of logs.
func (u User) LogValue() slog.Value {
	return slog.GroupValue(slog.String("name", u.Name), slog.Any("uid", u.UID), slog.Any("gid", u.GID))
}

func validateUser(u User) error {
	if err := ValidateUserName(u.Name); err != nil {
		return err
	}
	if err := ValidatePasswordHash(u.PasswordHash); err != nil {
		return fmt.Errorf("user %q: %w", u.Name, err)
	}
	if err := ValidateNTHash(u.NTHash); err != nil {
		return fmt.Errorf("user %q: %w", u.Name, err)
	}
	return nil
}

func getUser(tx *bbolt.Tx, name string) (User, bool, error) {
	var u User
	raw := tx.Bucket([]byte(bucketUsers)).Get([]byte(name))
	if raw == nil {
		return u, false, nil
	}
	if err := json.Unmarshal(raw, &u); err != nil {
		return u, false, fmt.Errorf("decode user %q: %w", name, err)
	}
	return u, true, nil
}

func putUser(tx *bbolt.Tx, u User) error {
	raw, err := json.Marshal(u)
	if err != nil {
		return fmt.Errorf("encode user %q: %w", u.Name, err)
	}
	return tx.Bucket([]byte(bucketUsers)).Put([]byte(u.Name), raw)
}

func forEachUser(tx *bbolt.Tx, fn func(User) error) error {
	return tx.Bucket([]byte(bucketUsers)).ForEach(func(k, v []byte) error {
		var u User
		if err := json.Unmarshal(v, &u); err != nil {
			return fmt.Errorf("decode user %q: %w", k, err)
		}
		return fn(u)
	})
}

// AddUser validates and adds a user and returns it as stored. The user
// must carry both hashes (see User.SetPassword). A zero UID is allocated
// from a counter starting at 10000 that never goes back, with GID = UID; a
// non-zero UID (a replica applying its master's config) must be ≥ 10000 and
// unused, and the counter moves past it. A zero Created becomes now.
func (s *Store) AddUser(u User) (User, error) {
	if err := validateUser(u); err != nil {
		return User{}, err
	}
	if u.UID != 0 && u.UID < FirstUID {
		return User{}, fmt.Errorf("%w user %q: uid %d is below %d", ErrInvalid, u.Name, u.UID, FirstUID)
	}
	if u.Created.IsZero() {
		u.Created = s.now().UTC()
	}
	err := s.update(func(tx *bbolt.Tx) error {
		if _, ok, err := getUser(tx, u.Name); err != nil {
			return err
		} else if ok {
			return fmt.Errorf("user %q: %w", u.Name, ErrExists)
		}
		next := counter(tx, keyNextUID, FirstUID)
		if u.UID == 0 {
			if next > 1<<32-2 { // 2^32-1 is (uid_t)-1
				return fmt.Errorf("user %q: no user IDs left", u.Name)
			}
			u.UID = uint32(next)
		} else {
			err := forEachUser(tx, func(o User) error {
				if o.UID == u.UID || o.GID == u.UID {
					return fmt.Errorf("user %q: uid %d: %w (user %q)", u.Name, u.UID, ErrExists, o.Name)
				}
				return nil
			})
			if err != nil {
				return err
			}
		}
		u.GID = u.UID
		if uint64(u.UID) >= next {
			if err := setCounter(tx, keyNextUID, uint64(u.UID)+1); err != nil {
				return err
			}
		}
		return putUser(tx, u)
	})
	if err != nil {
		return User{}, fmt.Errorf("store: add user: %w", err)
	}
	s.log.Info("user added", "user", u.Name, "uid", u.UID)
	return u, nil
}

// UpdateUser replaces the hashes of the user named u.Name and returns the
// user as stored. UID, GID and Created cannot change.
func (s *Store) UpdateUser(u User) (User, error) {
	if err := validateUser(u); err != nil {
		return User{}, err
	}
	err := s.update(func(tx *bbolt.Tx) error {
		old, ok, err := getUser(tx, u.Name)
		if err != nil {
			return err
		}
		if !ok {
			return fmt.Errorf("user %q: %w", u.Name, ErrNotFound)
		}
		u.UID, u.GID, u.Created = old.UID, old.GID, old.Created
		return putUser(tx, u)
	})
	if err != nil {
		return User{}, fmt.Errorf("store: update user: %w", err)
	}
	s.log.Info("user updated", "user", u.Name)
	return u, nil
}

// GetUser returns the user with this name.
func (s *Store) GetUser(name string) (User, error) {
	var u User
	err := s.db.View(func(tx *bbolt.Tx) error {
		var ok bool
		var err error
		if u, ok, err = getUser(tx, name); err != nil {
			return err
		} else if !ok {
			return fmt.Errorf("user %q: %w", name, ErrNotFound)
		}
		return nil
	})
	if err != nil {
		return User{}, fmt.Errorf("store: get user: %w", err)
	}
	return u, nil
}

// ListUsers returns every user, sorted by name.
func (s *Store) ListUsers() ([]User, error) {
	users := []User{}
	err := s.db.View(func(tx *bbolt.Tx) error {
		return forEachUser(tx, func(u User) error {
			users = append(users, u)
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("store: list users: %w", err)
	}
	return users, nil
}

// RemoveUser removes a user. Its UID is not reused.
func (s *Store) RemoveUser(name string) error {
	err := s.update(func(tx *bbolt.Tx) error {
		if _, ok, err := getUser(tx, name); err != nil {
			return err
		} else if !ok {
			return fmt.Errorf("user %q: %w", name, ErrNotFound)
		}
		return tx.Bucket([]byte(bucketUsers)).Delete([]byte(name))
	})
	if err != nil {
		return fmt.Errorf("store: remove user: %w", err)
	}
	s.log.Info("user removed", "user", name)
	return nil
}
