#!/bin/sh
# podstack: services are never started by package scripts in an image;
# containers start their one process themselves. 101 = action forbidden.
exit 101
