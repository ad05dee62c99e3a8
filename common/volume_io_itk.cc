#include "common/volume_io.h"
