package sdnotify

import "errors"

// ErrBadSocket is returned for a $NOTIFY_SOCKET that is neither an
// absolute path nor an abstract name starting with '@' (sd_notify(3)
// refuses those too; vsock addresses are not supported).
var ErrBadSocket = errors.New("sdnotify: NOTIFY_SOCKET is not an absolute path or @name")
