// The roles that run the CLISC method's stages 0-13 on a worker (the stage table is
// coordinator/method_plan.h): prep (stage 0), clip (1), cam (2-7: classifier training, LayerCAM,
// CAM post-processing and AMDA), sam (8, and the S3F scores of stage 11), trainer (9-10: U-Net
// training and prediction) and reduce (the CAM threshold search, the stage quality summary, the
// S3F ranking and the evaluation). Role code is torch-free; the models come in through
// MethodBackends.
#pragma once

#include "common/status.h"
#include "workers/roles/method_backends.h"
#include "workers/runtime/role_registry.h"

namespace clisc::roles {

// Role names that need the LibTorch binary (clisc-torch) to run.
bool RoleNeedsTorch(std::string_view role);

// Registers prep, reduce, clip and sam, and, when `backends` can build them, cam and trainer.
Status RegisterMethodRoles(worker::RoleRegistry& registry, const MethodBackends& backends);

}  // namespace clisc::roles
