/* sd_errno.c - the one converter between -errno values and Sheepdog result codes (SD_RES_*). */
#include <errno.h>

#include "lib/sd_proto.h"

/*
 * Result code -> -errno, one row per code of lib/sd_proto.h. Several codes
 * share an errno (every "not found" is -ENOENT); the reverse direction is
 * errno_to_res below, which picks one code per errno.
 */
static const struct {
	int res;
	int err;
} res_errno[] = {
	{SD_RES_SUCCESS, 0},
	{SD_RES_UNKNOWN, -EIO},
	{SD_RES_NO_OBJ, -ENOENT},
	{SD_RES_EIO, -EIO},
	{SD_RES_VDI_EXIST, -EEXIST},
	{SD_RES_INVALID_PARMS, -EINVAL},
	{SD_RES_SYSTEM_ERROR, -EIO},
	{SD_RES_VDI_LOCKED, -EBUSY},
	{SD_RES_NO_VDI, -ENOENT},
	{SD_RES_NO_BASE_VDI, -ENOENT},
	{SD_RES_VDI_READ, -EIO},
	{SD_RES_VDI_WRITE, -EIO},
	{SD_RES_BASE_VDI_READ, -EIO},
	{SD_RES_BASE_VDI_WRITE, -EIO},
	{SD_RES_NO_TAG, -ENOENT},
	{SD_RES_STARTUP, -EAGAIN},
	{SD_RES_VDI_NOT_LOCKED, -ENOLCK},
	{SD_RES_SHUTDOWN, -ESHUTDOWN},
	{SD_RES_NO_MEM, -ENOMEM},
	{SD_RES_FULL_VDI, -ENOSPC},
	{SD_RES_VER_MISMATCH, -EPROTO},
	{SD_RES_NO_SPACE, -ENOSPC},
	{SD_RES_WAIT_FOR_FORMAT, -EAGAIN},
	{SD_RES_WAIT_FOR_JOIN, -EAGAIN},
	{SD_RES_JOIN_FAILED, -ECONNREFUSED},
	{SD_RES_HALT, -ESHUTDOWN},
	{SD_RES_READONLY, -EROFS},
	{SD_RES_OLD_NODE_VER, -EPROTO},
	{SD_RES_NEW_NODE_VER, -EPROTO},
	{SD_RES_NOT_FORMATTED, -EAGAIN},
	{SD_RES_NETWORK_ERROR, -EHOSTUNREACH},
	{SD_RES_NO_STORE, -ENODEV},
	{SD_RES_NO_SUPPORT, -EOPNOTSUPP},
	{SD_RES_NODE_IN_RECOVERY, -EAGAIN},
	{SD_RES_KILLED, -ESHUTDOWN},
	{SD_RES_AGAIN, -EAGAIN},
};

int sd_res_to_errno(int res)
{
	for (size_t i = 0; i < sizeof(res_errno) / sizeof(res_errno[0]); i++)
		if (res_errno[i].res == res)
			return res_errno[i].err;
	return -EIO;
}

int sd_errno_to_res(int err)
{
	switch (err) {
	case 0:
		return SD_RES_SUCCESS;
	case -ENOENT:
		return SD_RES_NO_OBJ;
	case -EEXIST:
		return SD_RES_VDI_EXIST;
	case -EINVAL:
	case -ERANGE:
		return SD_RES_INVALID_PARMS;
	case -EBUSY:
		return SD_RES_VDI_LOCKED;
	case -ENOLCK:
		return SD_RES_VDI_NOT_LOCKED;
	case -ESHUTDOWN:
		return SD_RES_SHUTDOWN;
	case -ENOMEM:
		return SD_RES_NO_MEM;
	case -ENOSPC:
		return SD_RES_NO_SPACE;
	case -EPROTO:
		return SD_RES_VER_MISMATCH;
	case -ECONNREFUSED:
		return SD_RES_JOIN_FAILED;
	case -EROFS:
		return SD_RES_READONLY;
	case -EHOSTUNREACH:
		return SD_RES_NETWORK_ERROR;
	case -ENODEV:
		return SD_RES_NO_STORE;
	case -EOPNOTSUPP:
		return SD_RES_NO_SUPPORT;
	case -EAGAIN:
	case -ESTALE: /* the store: the fragment moved on, retry */
		return SD_RES_AGAIN;
	default: /* -EIO and anything not listed */
		return SD_RES_EIO;
	}
}
