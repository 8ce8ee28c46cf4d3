import type { DomainEvent } from '@fastgpu/contracts';
import { illegalState, type BuildEvent, type Decider } from '@fastgpu/eventsourcing';

/**
 * An operator's drain and undrain of a node, decided on the node's reliability aggregate (the
 * subject `<p>.evt.reliability.node.<id>`, where reliability also writes its losses,
 * recoveries and automatic drains). A drained node takes no new placements; its running work
 * continues. A lost node is neither drained nor undrained: it has nothing to take placements
 * on until it recovers. Draining a drained node records the new reason again (as before this
 * decider), and so does undraining a ready one.
 * Pure: ids and times arrive in the command, events are built by the given `build`.
 */
export interface NodeDrainState {
  lost: boolean;
  drained: boolean;
}

export type NodeDrainCommand = { kind: 'drain'; id: string; at: string; nodeId: string; reason: string } | { kind: 'undrain'; id: string; at: string; nodeId: string };

export function nodeDrainDecider(build: BuildEvent): Decider<NodeDrainState, NodeDrainCommand, DomainEvent> {
  return {
    initialState: () => ({ lost: false, drained: false }),
    decide(command, state) {
      if (state.lost) throw illegalState('node_lost', `node ${command.nodeId} is lost`, 'nodeId');
      const meta = { id: command.id, time: command.at, tenantId: null, correlationId: command.id };
      switch (command.kind) {
        case 'drain':
          return [build('NodeDrained', { nodeId: command.nodeId, reason: command.reason, drainedAt: command.at, automatic: false }, meta)];
        case 'undrain':
          return [build('NodeUndrained', { nodeId: command.nodeId, undrainedAt: command.at }, meta)];
        default: {
          const unreachable: never = command;
          return unreachable;
        }
      }
    },
    evolve(state, event) {
      switch (event.type) {
        case 'NodeLost':
          return { ...state, lost: true };
        case 'NodeRecovered':
          return { ...state, lost: false };
        case 'NodeDrained':
          return { ...state, drained: true };
        case 'NodeUndrained':
          return { ...state, drained: false };
        default:
          // ReportRejected and anything else on the subject changes nothing here.
          return state;
      }
    },
  };
}
