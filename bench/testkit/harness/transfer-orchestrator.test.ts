import { defineSuite } from '../suite.js';

defineSuite('harness', 'transfer-orchestrator');
