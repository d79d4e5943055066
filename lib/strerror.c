/* strerror.c - text for Sheepdog result codes, worded as Sheepdog 1.0 did. */
#include "lib/sd_proto.h"

const char *sd_strerror(uint32_t result)
{
	switch (result) {
	case SD_RES_SUCCESS: return "Success";
	case SD_RES_UNKNOWN: return "Unknown error";
	case SD_RES_NO_OBJ: return "No object found";
	case SD_RES_EIO: return "I/O error";
	case SD_RES_VDI_EXIST: return "VDI exists already";
	case SD_RES_INVALID_PARMS: return "Invalid parameters";
	case SD_RES_SYSTEM_ERROR: return "System error";
	case SD_RES_VDI_LOCKED: return "VDI is already locked";
	case SD_RES_NO_VDI: return "No VDI found";
	case SD_RES_NO_BASE_VDI: return "No base VDI found";
	case SD_RES_VDI_READ: return "Failed to read from requested VDI";
	case SD_RES_VDI_WRITE: return "Failed to write to requested VDI";
	case SD_RES_BASE_VDI_READ: return "Failed to read from base VDI";
	case SD_RES_BASE_VDI_WRITE: return "Failed to write to base VDI";
	case SD_RES_NO_TAG: return "Failed to find requested tag";
	case SD_RES_STARTUP: return "System is still booting";
	case SD_RES_VDI_NOT_LOCKED: return "VDI is not locked";
	case SD_RES_SHUTDOWN: return "System is shutting down";
	case SD_RES_NO_MEM: return "Out of memory on server";
	case SD_RES_FULL_VDI: return "Maximum number of VDIs reached";
	case SD_RES_VER_MISMATCH: return "Protocol version mismatch";
	case SD_RES_NO_SPACE: return "Server has no room for new objects";
	case SD_RES_WAIT_FOR_FORMAT: return "Waiting for cluster to be formatted";
	case SD_RES_WAIT_FOR_JOIN: return "Waiting for other nodes to join cluster";
	case SD_RES_JOIN_FAILED: return "Node has failed to join cluster";
	case SD_RES_HALT: return "IO has halted as there are not enough living nodes";
	case SD_RES_READONLY: return "Object is read-only";
	case SD_RES_OLD_NODE_VER: return "Request has an old epoch";
	case SD_RES_NEW_NODE_VER: return "Request has a new epoch";
	case SD_RES_NOT_FORMATTED: return "Cluster has not been formatted";
	case SD_RES_NETWORK_ERROR: return "Network error between sheep";
	case SD_RES_NO_STORE: return "Targeted backend store is not found";
	case SD_RES_NO_SUPPORT: return "Operation is not supported";
	case SD_RES_NODE_IN_RECOVERY: return "Targeted node is in recovery";
	case SD_RES_KILLED: return "Node is killed";
	case SD_RES_AGAIN: return "Ask to try again";
	default: return "Invalid error code";
	}
}
