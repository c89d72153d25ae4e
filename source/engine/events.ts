/**
 * What the engine tells a renderer. A tagged union, folded into screen state by source/ui
 * (reducers tested alone) or printed line by line by the plain renderer. All text in events
 * has already passed through the redactor.
 */
import type { Action } from './step.js';

export type EngineEvent =
  | {
      type: 'run-started';
      runId: string;
      runbooks: string[];
      steps: { id: string; title: string; hosts: string[] }[];
      transcriptPath: string;
      dryRun: boolean;
    }
  | { type: 'step-started'; stepId: string; host: string }
  | { type: 'step-planned'; stepId: string; host: string; actions: Action[]; reason?: string; diffs: FileDiff[] }
  | { type: 'command-started'; stepId: string; host: string; title: string; script: string }
  | { type: 'command-finished'; stepId: string; host: string; title: string; code: number; durationMs: number }
  | { type: 'output'; stepId: string; host: string; stream: 'stdout' | 'stderr'; line: string }
  | { type: 'file-written'; stepId: string; host: string; path: string; backupPath?: string; changed: boolean }
  | { type: 'step-skipped'; stepId: string; host: string; reason: string }
  | { type: 'step-finished'; stepId: string; host: string; changed: boolean; durationMs: number; note?: string }
  | {
      type: 'step-failed';
      stepId: string;
      host: string;
      error: string;
      command?: string;
      lastLines: string[];
      transcriptPath: string;
      resumeCommand: string;
    }
  | { type: 'run-finished'; ok: boolean; changed: number; unchanged: number; failed: number; durationMs: number; transcriptPath: string };

export interface FileDiff {
  path: string;
  /** Unified diff text (empty when unchanged). */
  diff: string;
}

export type EventSink = (event: EngineEvent) => void;
