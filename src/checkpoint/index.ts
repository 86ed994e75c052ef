/** Public API of the checkpoint layer: folders of safetensors weights, config.yaml, tokenizer.json and meta.json. */
export {
  decodeSafetensors,
  encodeSafetensors,
  readSafetensors,
  readSafetensorsHeader,
  writeSafetensors,
  DTYPE_BYTES,
  type EncodeOptions,
  type NamedTensors,
  type SafetensorsFile,
  type SafetensorsHeader,
  type TensorDtype,
  type TensorEntry,
  type WriteDtype,
} from './safetensors.ts';
export { f16BitsToNumber, f32ToF16Bits } from './half.ts';
export { validateMeta, META_FORMAT_VERSION, type Meta, type Provenance } from './meta.ts';
export {
  listCheckpointFolders,
  listLeftoverFolders,
  repairInterruptedWrite,
  repairInterruptedWrites,
  sha256Bytes,
  sha256File,
  writeFolderAtomic,
  WEIGHTS_FILE,
  type FolderFiles,
  type RepairOptions,
  type RepairReport,
} from './folder.ts';
export { parseCheckpointConfig, stringifyCheckpointConfig, type CheckpointConfig } from './config-file.ts';
export { saveCheckpoint, type MetaInput, type SaveCheckpointOptions } from './save.ts';
export { loadCheckpoint, type LoadCheckpointOptions, type LoadedCheckpoint } from './load.ts';
